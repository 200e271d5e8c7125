"""The ML layer shared by the web process and the worker; imports nothing from app/ or workers/."""
