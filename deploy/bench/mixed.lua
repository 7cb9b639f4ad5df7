-- Mixed traffic for the MIXED round of deploy/bench/run.sh (wrk script).
--
--   wrk -t2 -c32 -d5s -s deploy/bench/mixed.lua http://127.0.0.1:9080 -- <run id>
--
-- Out of every 50 requests, in a fixed interleaved order (no randomness, so
-- that every round sends the same mix):
--   10 (20 %)  identité modality: GET /v3/dss/quotient_familial/identite with
--              the civil status of a sandbox case (Paul Louis DUPONT) and the
--              sandbox API token sandbox_all_scopes;
--   36 (72 %)  FranceConnect route with the cached token cnaf_qfv2
--              (90 % of the FranceConnect calls);
--    4 (8 %)   FranceConnect route with a NEW token: the sandbox FranceConnect
--              takes `<case>~<anything>` as a fresh valid token of <case>, so
--              each one costs one real checktoken (JWE decrypt + JWS verify).
--              `cnaf_qfv2~<run id>-t<thread>-<n>` is unique across wrk
--              threads and, with a run id per wrk invocation, across rounds.
-- Every answer is expected to be 200: wrk's "Non-2xx or 3xx responses"
-- counts the others.

local recipient = "13002526500013"
local fc_path = "/v3/dss/quotient_familial/france_connect?recipient=" .. recipient
local identite_path = "/v3/dss/quotient_familial/identite?recipient=" .. recipient ..
	"&nomNaissance=DUPONT&nomUsage=MARTIN&prenoms%5B%5D=Paul&prenoms%5B%5D=Louis" ..
	"&anneeDateNaissance=1962&moisDateNaissance=8&jourDateNaissance=24&sexeEtatCivil=M" ..
	"&codeCogInseePaysNaissance=99100&codeCogInseeCommuneNaissance=75107"

-- Main context: number the threads.
local threads = 0
function setup(thread)
	threads = threads + 1
	thread:set("tid", threads)
end

-- Thread context from here on.
local plan = {}        -- kind of request i (1..50): "identite", "new" or "cached"
local identite_req, cached_req
local prefix
local n = 0

function init(args)
	local run = args[1] or tostring(os.time())
	prefix = "cnaf_qfv2~" .. run .. "-t" .. tostring(tid) .. "-"
	for i = 1, 50 do
		if i % 5 == 1 then
			plan[i] = "identite"
		elseif i == 3 or i == 15 or i == 27 or i == 39 then
			plan[i] = "new"
		else
			plan[i] = "cached"
		end
	end
	identite_req = wrk.format("GET", identite_path, { Authorization = "Bearer sandbox_all_scopes" })
	cached_req = wrk.format("GET", fc_path, { Authorization = "Bearer cnaf_qfv2" })
end

function request()
	n = n + 1
	local kind = plan[(n - 1) % 50 + 1]
	if kind == "identite" then
		return identite_req
	elseif kind == "new" then
		return wrk.format("GET", fc_path, { Authorization = "Bearer " .. prefix .. tostring(n) })
	end
	return cached_req
end
