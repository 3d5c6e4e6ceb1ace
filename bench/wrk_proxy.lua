-- wrk_proxy.lua: make wrk drive an explicit HTTP proxy.
-- wrk connects to the URL on its command line (the proxy); this script turns every
-- request into an absolute-form GET of WRK_TARGET_URL with that URL's Host header.
-- Usage: WRK_TARGET_URL=http://127.0.0.1:8000/small wrk -s bench/wrk_proxy.lua http://127.0.0.1:8080/

local target = os.getenv("WRK_TARGET_URL")
if not target then
  error("wrk_proxy.lua: set WRK_TARGET_URL to the upstream URL, e.g. http://127.0.0.1:8000/small")
end
local authority = target:match("^https?://([^/]+)")
if not authority then
  error("wrk_proxy.lua: WRK_TARGET_URL must be an absolute http:// URL, got " .. target)
end

-- Set before wrk.init runs, so wrk formats the request once and reuses it (static request).
wrk.path = target
wrk.headers["Host"] = authority
