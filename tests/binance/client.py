"""Drives softstake's Binance-compatible REST API with the official client
(PyPI binance-sdk-staking) and with raw requests for the refusals.

Usage: client.py BASE_URL API_KEY SECRET ASSET
Prints one JSON object with what it saw; exits non-zero on an unexpected answer.
"""
import hashlib
import hmac
import json
import sys
import time
import urllib.parse

import requests
from binance_common.configuration import ConfigurationRestAPI
from binance_common.errors import BadRequestError, UnauthorizedError
from binance_sdk_staking.staking import Staking


def main():
    base, key, secret, asset = sys.argv[1:5]
    cfg = ConfigurationRestAPI(api_key=key, api_secret=secret, base_path=base, timeout=10_000, retries=0)
    api = Staking(config_rest_api=cfg).rest_api
    out = {}

    out["set"] = api.set_soft_staking(soft_staking=True).data().to_dict()
    listing = api.get_soft_staking_product_list().data().to_dict()
    out["list"] = listing
    out["list_asset"] = api.get_soft_staking_product_list(asset=asset).data().to_dict()
    out["rewards"] = api.get_soft_staking_rewards_history(asset=asset).data().to_dict()

    def raw(path, query):
        """A hand-signed GET of `query` (a string, sent as is)."""
        sig = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        r = requests.get(f"{base}{path}?{query}&signature={sig}", headers={"X-MBX-APIKEY": key}, timeout=10)
        return [r.status_code, r.json()]

    # The same signed URL twice: the replay guard refuses the second (a retry signs again).
    params = {"softStaking": "false", "timestamp": str(int(time.time() * 1000))}
    q = urllib.parse.urlencode(params)
    signed = q + "&signature=" + hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()
    first = requests.get(f"{base}/sapi/v1/soft-staking/set?{signed}", headers={"X-MBX-APIKEY": key}, timeout=10)
    second = requests.get(f"{base}/sapi/v1/soft-staking/set?{signed}", headers={"X-MBX-APIKEY": key}, timeout=10)
    out["retry_same_url"] = [first.status_code, first.json(), second.status_code, second.json()]
    # switched back on: re-activating keeps nothing of the old activation (a new day starts)
    out["set_again"] = api.set_soft_staking(soft_staking=True).data().to_dict()

    # Parameter checks: duplicates, numeric bounds.
    ts = lambda: str(int(time.time() * 1000))
    out["duplicate"] = raw("/sapi/v1/soft-staking/list", f"asset={asset}&asset={asset}&timestamp={ts()}")
    out["page_overflow"] = raw("/sapi/v1/soft-staking/list", f"current=4294967295&size=100&timestamp={ts()}")
    out["time_overflow"] = raw(
        "/sapi/v1/soft-staking/history/rewardsRecord", f"startTime=9223372036854775807&timestamp={ts()}"
    )

    # Refusals, with Binance's codes.
    bad = ConfigurationRestAPI(api_key=key, api_secret="not-the-secret", base_path=base, timeout=10_000, retries=0)
    try:
        Staking(config_rest_api=bad).rest_api.get_soft_staking_product_list()
        out["bad_signature"] = "accepted"
    except BadRequestError as e:
        out["bad_signature"] = str(e)
    stale = {"timestamp": str(int(time.time() * 1000) - 60_000)}
    q = urllib.parse.urlencode(stale)
    sig = hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()
    r = requests.get(f"{base}/sapi/v1/soft-staking/list?{q}&signature={sig}", headers={"X-MBX-APIKEY": key}, timeout=10)
    out["stale"] = [r.status_code, r.json()]
    r = requests.get(f"{base}/sapi/v1/soft-staking/list?{q}&signature={sig}", headers={"X-MBX-APIKEY": "nope"}, timeout=10)
    out["bad_key"] = [r.status_code, r.json()]
    try:
        Staking(config_rest_api=ConfigurationRestAPI(api_key="nope", api_secret=secret, base_path=base, retries=0)).rest_api.get_soft_staking_product_list()
        out["bad_key_client"] = "accepted"
    except UnauthorizedError as e:
        out["bad_key_client"] = str(e)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
