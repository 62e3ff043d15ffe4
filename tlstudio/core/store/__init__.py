"""What the studio keeps on disk: run folders, projects, its own folders, atomic writes."""
