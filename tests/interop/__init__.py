"""Third-party Forward clients, installed from their registries, that the interop tests drive."""
