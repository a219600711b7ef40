"""The dashboard's own tables, beside the sync store's (isolog/store.py) in the same database.

The tables are step 4 of the store's migrations (isolog/db/schema.py), on both back ends.

  web_users         people who sign in: name (the user id of 21 CFR 11.300(a): unique, never reused,
                    never deleted: `active` only turns them off), full name (printed with their
                    signatures, 11.50(a)(1)), role (staff, qa, admin), argon2id hash of the password
  web_sessions      signed-in sessions: a random token (the signed cookie holds it), the user, when it
                    was made and last used (idle sessions end: web/auth.py IDLE_S); sign-out deletes it
  web_signatures    electronic signatures (11.50, 11.70): who (user id and full name), meaning
                    (released / rejected), reason, UTC time, and what was signed: the shipment
                    configuration row, its verdict and the SHA-256 of its records. Only INSERTed.
  web_certificates  the certificate archive: every issued PDF with its SHA-256, who issued it and
                    when, for which shipment and records. Only INSERTed: never overwritten.
  web_verdicts      the last check of each shipment configuration (verdict, records and their
                    SHA-256, the device's next_seq at the time; "none" when it could not be checked,
                    e.g. no records yet): lets the shipment list show verdicts without running the
                    engine on every row. A cache: stale when next_seq moved, unless `final` (the
                    shipment's records ended, at the next configuration, within what was stored).
  web_settings      the key that signs the session cookies (random, made once per database)

Step 6 (web/reviews.py), step 7 (accounts.Throttle):

  web_excursions    the temperature excursions of each shipment configuration's last check (rule,
                    start and end, records, duration, extreme, whether it breaks the rule), keyed by
                    the excursion's stable key (reviews.key_of); replaced at every check: a cache,
                    so the shipment list counts those awaiting review without running the engine
  web_excursion_reviews  QA's signed decision on one excursion (accepted / rejected): who, meaning,
                    reason, UTC time, the records' SHA-256 it was made on. Only INSERTed; one per
                    excursion of a shipment configuration.
  web_failures      failed password attempts (user id, time): the sign-in lockout, shared by every
                    dashboard process on the store and kept across restarts
"""
