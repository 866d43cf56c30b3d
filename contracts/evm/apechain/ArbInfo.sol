// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

// A local stand-in for ApeChain's ArbInfo precompile (0x0000000000000000000000000000000000000065),
// for tests on anvil, where it is installed with `anvil_setCode`.
//
// Follows ApeChain's Nitro fork (`precompiles/ArbInfo.go`): the same function signatures.
// Yield modes are 0 automatic, 1 void, 2 delegate; `configure*Yield()` sets the caller's
// mode; EOAs earn by default (docs.apechain.com, Native Yield: "EOAs automatically
// receive $APE yield via rebasing"), contracts only once they configure automatic yield.
//
// Test-only deviations, and why:
// - the rebase itself is not here: anvil cannot grow balances from a contract, so the
//   test harness adds the yield with `anvil_setBalance` to accounts whose mode (read
//   from this contract) is automatic;
// - `getBalanceValues` reports the whole balance as `fixed` (no share accounting), as
//   Hardhat's EDR does for ApeChain.

contract ArbInfo {
    uint8 internal constant AUTOMATIC = 0;
    uint8 internal constant VOID = 1;
    uint8 internal constant DELEGATE = 2;

    mapping(address => bool) internal configured;
    mapping(address => uint8) internal mode;
    mapping(address => address) internal delegateOf;

    function getBalance(address account) external view returns (uint256) {
        return account.balance;
    }

    function getCode(address account) external view returns (bytes memory) {
        return account.code;
    }

    /// (fixed, shares, debt)
    function getBalanceValues(address account) external view returns (uint256, uint256, uint256) {
        return (account.balance, 0, 0);
    }

    function getYieldConfiguration(address account) public view returns (uint8) {
        if (!configured[account]) {
            return account.code.length > 0 ? VOID : AUTOMATIC;
        }
        return mode[account];
    }

    function getDelegate(address account) external view returns (address) {
        return getYieldConfiguration(account) == DELEGATE ? delegateOf[account] : address(0);
    }

    function configureAutomaticYield() external {
        _set(AUTOMATIC, address(0));
    }

    function configureVoidYield() external {
        _set(VOID, address(0));
    }

    /// Silently does nothing when delegating to oneself, as the precompile.
    function configureDelegateYield(address account) external {
        if (account == msg.sender) {
            return;
        }
        _set(DELEGATE, account);
    }

    function _set(uint8 m, address d) internal {
        configured[msg.sender] = true;
        mode[msg.sender] = m;
        delegateOf[msg.sender] = d;
    }
}
