"""What several verbs do to a domain, on top of the domain view and plan, the seal and
libvirt: reaching libvirt (virt), reading a domain's XML and editing its saved definition
(define), sealing a payload for a domain (sealed), and attaching one with its one-line
report (attach). The command's verbs call these; so can anything else that edits a domain
the way the command does.
"""
