"""pod-save's library: find everything on /workspace, save what can be saved, and say
plainly what cannot. Python 3.10+ standard library only (it runs with the image's
python3). bin/pod-save and bin/pod-restore are thin entries over it.

Modules: config (settings), proc (subprocesses, secrets in text), policy (save.toml),
gitcmd (git as the repo's owner), walk (the workspace inventory), snapshot (the work
tree as a commit, exact bytes), refs (what to push where), repo (one repository),
wandbsync, hooks, datasync (rclone), lock, report, cli, restore.
"""
