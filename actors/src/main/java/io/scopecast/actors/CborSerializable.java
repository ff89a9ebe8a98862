package io.scopecast.actors; public interface CborSerializable {}
