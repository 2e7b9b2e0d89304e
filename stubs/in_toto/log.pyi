import logging

LOGGER: logging.Logger
HANDLER: logging.Handler
