"""Everything that talks to a board: the link, devices, configure, sync, provisioning, deploy, build."""
