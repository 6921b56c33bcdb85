"""The Celery application: two queues, `cpu` (ingest, tiles, consensus, export) and `gpu`
(train, predict)."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eoplatform.settings")

app = Celery("cryolabel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("cpu"), Queue("gpu"))
app.autodiscover_tasks()
