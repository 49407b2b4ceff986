{{ cookiecutter.project_description|python_string }}
