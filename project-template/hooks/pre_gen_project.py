"""Refuse package names that Python cannot import.

`serotiny new` checks its answers before rendering and says what is wrong in one line; this
hook guards those who run cookiecutter on the template directly.
"""

import keyword
import re
import sys

package_name = {{ cookiecutter.package_name|python_string }}
if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", package_name) or keyword.iskeyword(package_name):
    sys.stderr.write(
        f"error: package_name {package_name!r} is not a valid Python package name; "
        "use ASCII letters, digits and underscores, not starting with a digit\n"
    )
    sys.exit(2)
