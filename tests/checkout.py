"""Where the checkout under test is: the one definition the test modules import (scripts, the
Makefile and committed results are found from it)."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
