from mmbot.app.cli import entrypoint

entrypoint()
