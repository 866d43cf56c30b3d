// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

// A custody contract of the kind an exchange funds wallets from (a multisig's
// execTransaction, a sweeper): it forwards the value it is sent to the recipient by an
// internal call. The recipient's funding is no transaction of its own: its receipt shows
// the contract as `to`, and native transfers log nothing. Tests use it to show that such
// a deposit is not booked as ApeChain native yield unless declared with its amount.
contract CustodyForwarder {
    function pay(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "transfer failed");
    }
}
