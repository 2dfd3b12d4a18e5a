-- wrk script: POST a JSON body with Content-Type (and the node key, for the gateway).
-- WRK_BODY: the request body; WRK_KEY: the node key (unset when calling an instance directly).
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or '{"input": {"a": 1.5, "b": 2.25}}'
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("WRK_KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end
