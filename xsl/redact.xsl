<?xml version="1.0" encoding="UTF-8"?>
<!--
  payloadhook: a domain XML with every payload file's content removed (README, "Redaction").

    virsh dumpxml DOMAIN | xsltproc /usr/share/payloadhook/redact.xsl -

  The identity template copies everything; one override empties each <pl:content>
  (its text and any child), keeps its encoding (and a sealed file's key id) and marks it
  redacted="yes"; a second empties each file of oVirt's payload metadata (VDSM's
  <ovirt-vm:payload>, and the older <ovirt-vm:specParams><ovirt-vm:vmPayload>), keeping its
  attributes (the path) and marking it redacted="yes".
  File names, labels, targets and everything outside the payloads stay as they are.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:pl="urn:payloadhook:payload:1"
    xmlns:ovirt-vm="http://ovirt.org/vm/1.0">

  <xsl:template match="@*|node()">
    <xsl:copy>
      <xsl:apply-templates select="@*|node()"/>
    </xsl:copy>
  </xsl:template>

  <xsl:template match="pl:file/pl:content">
    <xsl:copy>
      <xsl:copy-of select="@encoding|@key"/>
      <xsl:attribute name="redacted">yes</xsl:attribute>
    </xsl:copy>
  </xsl:template>

  <xsl:template match="ovirt-vm:payload/ovirt-vm:file|ovirt-vm:vmPayload/ovirt-vm:file">
    <xsl:copy>
      <xsl:copy-of select="@*"/>
      <xsl:attribute name="redacted">yes</xsl:attribute>
    </xsl:copy>
  </xsl:template>

</xsl:stylesheet>
