"""{{cookiecutter.project_description}}"""
