"""Every rule a node or an alias must meet, checked before anything is stored."""
