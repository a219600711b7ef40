# Host-side view of the firmware sources (package isolog_fw). Not deployed to boards: on a board the
# firmware modules are top-level (`import record`).
