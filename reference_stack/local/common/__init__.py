"""What every local-stack service shares (docs/internals.md, "Local stack processes").

contract.py   the service process contract: ``--config FILE``, one config error format and
              exit status, logging to stderr, SIGTERM/SIGINT, parent-death watch, ready file
launcher.py   start a service process in its own session, wait for its ready file against a
              deadline, stop it (SIGTERM, then kill its process group), collect its exit
tls.py        the local CA and server certificates (trustme)
configs.py    the services' JSON configs, one typed builder per service
"""
