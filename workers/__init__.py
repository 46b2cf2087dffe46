"""The worker side. `ml/` is the ML core (torch, transformers, peft; nothing of Django);
`tasks/` is the bridge: each task loads its rows, calls the core and writes results back;
`management/commands/` are the commands that score in their own process. INSTALLED_APPS
lists this package for those commands alone: the web side imports none of its modules but
ml/config.py and ml/metrics.py (torch-free: a run's settings, the packaged model, the
accuracy interval; the import contracts check it) and hands work over by task name
(config.celery.enqueue)."""
