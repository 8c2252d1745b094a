package org.rsnetedge.core;

/** A policy, or a selector input, that is not valid (Python: rsnet_edge.policy.PolicyError). */
public class PolicyException extends IllegalArgumentException {
  public PolicyException(String message) {
    super(message);
  }
}
