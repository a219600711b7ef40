"""The fleet dashboard (`isolog serve`): web pages over the sync store for logistics staff, QA and
shift leads (docs/dashboard.md). app.py: the Starlette app; accounts.py: users, sessions,
signatures, certificate archive; queries.py: paged reads; tables.py: the dashboard's tables."""
