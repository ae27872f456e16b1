-- POST /oauth/token with grant_type=client_credentials, client_secret_basic.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
wrk.body = "grant_type=client_credentials"
