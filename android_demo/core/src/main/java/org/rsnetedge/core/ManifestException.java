package org.rsnetedge.core;

/** A manifest that is missing, malformed or inconsistent (Python: rsnet_edge.manifest.ManifestError). */
public class ManifestException extends IllegalArgumentException {
  public ManifestException(String message) {
    super(message);
  }

  public ManifestException(String message, Throwable cause) {
    super(message, cause);
  }
}
