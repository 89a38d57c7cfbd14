"""Operations: database initialization, backups, maintenance, health, reports, scheduling."""
