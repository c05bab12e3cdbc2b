FLASK_APP=microblog.py
# `flask run` serves the host emailed links use (config.py: SERVER_NAME).
FLASK_RUN_HOST=localhost
