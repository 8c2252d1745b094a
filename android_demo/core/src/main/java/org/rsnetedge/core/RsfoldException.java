package org.rsnetedge.core;

/**
 * An RSFOLD artifact that cannot be unpacked: corrupt, truncated, not RSFOLD, or an output that
 * would not be what the header promises (Python: rsnet_edge.rsfold.RsfoldError). One-line message.
 */
public class RsfoldException extends java.io.IOException {
  public RsfoldException(String message) {
    super(message);
  }
}
