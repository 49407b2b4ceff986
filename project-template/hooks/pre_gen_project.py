"""Refuse package names that Python cannot import."""

import re
import sys

package_name = "{{ cookiecutter.package_name }}"
if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", package_name):
    sys.stderr.write(
        f"error: package_name '{package_name}' is not a valid Python identifier; "
        "use letters, digits and underscores\n"
    )
    sys.exit(2)
