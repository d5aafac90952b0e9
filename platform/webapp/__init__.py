"""Server-rendered pages: login, projects, video lists, upload."""
