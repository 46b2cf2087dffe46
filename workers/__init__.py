"""The worker side. `ml/` is the ML core (torch, transformers, peft; nothing of Django);
`tasks/` is the bridge: each task loads its rows, calls the core and writes results back;
`management/commands/` are the commands that score in their own process. The web side never
imports this package: it enqueues tasks by name (config.celery.enqueue)."""
