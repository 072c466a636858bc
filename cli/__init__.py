"""The one command line, ``mlops-lab`` (cli/app.py); each module here adds one group of commands."""
