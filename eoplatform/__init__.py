"""The Cryolabel Django project (named eoplatform: a package named `platform` would shadow the
standard library module that Django, Celery and PyTorch import)."""

from .celery import app as celery_app

__all__ = ("celery_app",)
