"""licentia-wallet: the holder's command line."""
