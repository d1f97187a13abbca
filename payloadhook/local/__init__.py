"""What a command line names, read (or written) as root from paths other users may control:
files and directories (files), ``--files-json`` documents (files_json), domain XML and OVF
files and ``--files-from`` (documents), a preset's parts (presets), the payload all of these
make (payload), and the files the command writes (output); every path walked by the one rule
of paths. Nothing here calls libvirt; the verbs in payloadhook/cli/ parse, then call here.
"""
