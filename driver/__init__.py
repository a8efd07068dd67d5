"""Run both stacks of the Linkerd 2 integration in order, from the command line or from Python.

from driver import Deployment
result = Deployment(project_dir=".").up()
"""

from driver.api import Deployment, OperationResult, StackResult
from driver.settings import DriverError

__all__ = ["Deployment", "DriverError", "OperationResult", "StackResult"]
