"""Our Bookinfo and httpbin, plus the in-mesh client, for the local mesh."""
