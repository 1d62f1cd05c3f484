from mmbot.cli.main import entrypoint

entrypoint()
