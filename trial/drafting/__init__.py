"""AI drafts: image preprocessing, prompts, model backends, reply parsing, and the pipeline.

``trial.drafting.pipeline`` is the entry point (queue, run, sweep); the Celery tasks in
``trial.tasks`` only call it.
"""
