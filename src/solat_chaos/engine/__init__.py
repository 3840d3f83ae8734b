"""The SOLAT execution core. It reaches the outside world only through its three ports:
`FileSystem`, `Broker` and `Clock`."""
