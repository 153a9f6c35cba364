from loadcheck.cli import main

main()
