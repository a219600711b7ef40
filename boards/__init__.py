# Host-side view of the board modules (package isolog_boards). Not deployed to boards.
