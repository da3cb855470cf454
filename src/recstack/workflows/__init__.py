"""The jobs recstack runs: train, tune and evaluate models on the store's data.

The CLI, the HTTP admin endpoints and the demo all call these functions, so there is one path
from stored events to a registered model or a report, whichever entry point asks for it.
"""
