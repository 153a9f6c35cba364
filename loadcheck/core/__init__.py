"""The core layer: the rules and file formats every other part of loadcheck shares.

Nothing here imports the app layer (``loadcheck.cli``, ``loadcheck.commands``,
``loadcheck.bench``) or a domain package (``checks``, ``reports``, ``locustfiles``,
``reference_stack``); the import contract in ``pyproject.toml`` holds it so.
"""
