"""Bridge networks for containers, as docker's default `bridge` and user networks are.

A network is a Linux bridge on the host with the first address of its subnet (the
gateway); each running container on it gets a veth pair, one end on the bridge and the
other, `eth0`, in a network namespace of its own at /run/netns/berth-<id> with the next
free address. `-p` is served by a userland proxy (as docker-proxy is) that the process
starting the container forks. Nothing here is imported for `--network none|host`.

    ports.py     `-p [IP:][HOSTPORT:]CTRPORT[/udp]` values (pure)
    store.py     networks and address leases under <root>/networks/, under a file lock
    links.py     the bridge, veth and namespace devices (iproute2 to make, netlink to delete)
    proxy.py     the userland proxy for published ports: binds, forks, stops
    relay.py     its relay loop (asyncio, imported only in the proxy process)
    endpoint.py  a container joining its network at start and leaving it at exit
    settings.py  what `ps` and `inspect` show (file reads only)
"""
