"""Multi-role collaboration: roles (personas on accounts), scripts, scenarios, collaboration runs
and swarms (the 15 `multi_role` commands).

- `library.py` / `library_store.py`: roles, scripts and scenarios (`RoleLibrary`).
- `script_engine.py`: a run's state machine, pure: given the script, the run's state and what
  happened (time passed, the target wrote, a keyword, a manual step), what to say next and when.
- `service.py` / `run_store.py`: `CollaborationService`: start/stop/status of runs, the runner round
  (`tick`) and the target's messages (`on_message`); every line is a job through messaging's queue,
  the run's state persisted so a restart resumes without repeating a line.
- `swarm.py` / `swarm_store.py`: `SwarmService`: role accounts taking turns in a group's talk.
- `store.py`: `CollaborationStores`, every store of the domain from one database.
- `handlers.py`: the commands and consumers, thin.
"""
