"""The lab shell: settings, the one CLI, the concept catalog and the narrated demos."""
