"""One line that says what machine a benchmark ran on, printed above every table."""

import os
import platform
import sys


def describe() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} CPUs ({cpu}), Python {sys.version.split()[0]}, {platform.system()} {platform.release()}"
