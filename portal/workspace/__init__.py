"""Staff workspace: caseload, the participant page, search, break-glass, exit and disposition."""
