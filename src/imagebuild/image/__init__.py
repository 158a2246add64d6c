"""The image side: spec -> render -> build -> push, and what checks a built image."""
