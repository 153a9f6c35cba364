"""The local ``lambda`` service: the Invoke API, the Runtime API and awslambdaric environments.

    __main__.py      process entry: ``python -m reference_stack.local.lambda_ --config FILE``
    config.py        the service config (docs/internals.md, lambda)
    service.py       the Invoke API and /_loadcheck/ paths on the service port; LambdaService
    invoke.py        the Invoke rules: throttle, run, time out, faults, START/END/REPORT
    environments.py  the model: Invocation, Environment, FunctionPool
    launcher.py      starting/killing ``python -m awslambdaric`` processes
    runtime_api.py   the Runtime API (2018-06-01) wire protocol, one listener per environment
    logs.py          log lines, output pumping, CloudWatch Logs shipping in batches
    faults.py        lambda-error, lambda-timeout

Every departure from AWS is listed in the docstring of the module that departs and in
docs/fidelity.md (section lambda).
"""
